-- Wake the publisher the moment a change commits: NOTIFY is delivered at
-- commit (and dropped on rollback), so the publisher never wakes for a
-- version that is not visible yet. One notification per statement, not per
-- row, so a 100k-row import queues one message instead of 100k; the payload
-- is the newest version, for logs only. The publisher always reads the
-- outbox itself, so a lost or coalesced notification costs at most its
-- fallback poll.
CREATE OR REPLACE FUNCTION notify_nexus_changes() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    newest BIGINT;
BEGIN
    SELECT max(version) INTO newest FROM inserted;
    IF newest IS NOT NULL THEN
        PERFORM pg_notify('nexus_changes', newest::text);
    END IF;
    RETURN NULL;
END
$$;

DROP TRIGGER IF EXISTS changes_notify ON changes;
CREATE TRIGGER changes_notify AFTER INSERT ON changes
    REFERENCING NEW TABLE AS inserted
    FOR EACH STATEMENT EXECUTE FUNCTION notify_nexus_changes();
