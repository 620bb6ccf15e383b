-- Deliveries leased to a worker. The worker is named so that it can count
-- its own attempts in flight itself (a finished attempt keeps its lease until
-- it is recorded, but no longer loads the endpoint) and count only other
-- workers' leases here, without reading the whole pending queue.
ALTER TABLE webhook_deliveries ADD COLUMN locked_by TEXT;
CREATE INDEX webhook_deliveries_leased ON webhook_deliveries (endpoint_id, locked_until)
    WHERE state = 'pending' AND locked_until IS NOT NULL;
