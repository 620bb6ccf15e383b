-- Deliveries leased to a worker, so a claim counts what each endpoint has in
-- flight without reading the whole pending queue.
CREATE INDEX webhook_deliveries_leased ON webhook_deliveries (endpoint_id, locked_until)
    WHERE state = 'pending' AND locked_until IS NOT NULL;
