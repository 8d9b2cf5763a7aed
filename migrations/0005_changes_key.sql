-- Alias history and time-travel resolve read one key's changes in version
-- order (GET .../history, resolve ?as_of=): without this index each is a
-- scan of the whole outbox.
CREATE INDEX IF NOT EXISTS changes_key ON changes(context, alias, version);
