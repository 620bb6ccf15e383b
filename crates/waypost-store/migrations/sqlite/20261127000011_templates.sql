-- Templates: list a workspace's templates and sync a channel's in id order
-- without scanning the table.
CREATE INDEX templates_workspace ON templates (workspace_id, id);
CREATE INDEX templates_channel ON templates (channel_id, id);
