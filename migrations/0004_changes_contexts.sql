-- The outbox also carries changes of the configured contexts: a governance
-- change that changes the set takes a registry version and writes one row
-- with op 'contexts', record = the new set as nexus_protocol::KnownContexts
-- serialises it ("any" or {"only": [...]}), context and alias empty. Edges
-- decide unknown_context on that set, so it must reach them in version
-- order with the alias changes.
--
-- Safe to run twice: the constraint is dropped (if there) and re-added.
ALTER TABLE changes DROP CONSTRAINT IF EXISTS changes_op_check;
ALTER TABLE changes ADD CONSTRAINT changes_op_check
    CHECK (op IN ('upsert', 'remove', 'contexts'));
