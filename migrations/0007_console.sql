-- The admin console (control-plane/src/console/) and the admin API's list
-- search `q`: substring search (ILIKE '%q%') on alias, canonical and
-- description, indexed by trigrams so a rare term does not scan the
-- registry (store/console.rs plans around the common ones). pg_trgm is a
-- trusted extension (PostgreSQL 13+): the database owner may create it.
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE INDEX IF NOT EXISTS aliases_alias_trgm ON aliases USING gin (alias gin_trgm_ops);
CREATE INDEX IF NOT EXISTS aliases_canonical_trgm ON aliases USING gin (canonical gin_trgm_ops);
CREATE INDEX IF NOT EXISTS aliases_description_trgm ON aliases USING gin (description gin_trgm_ops);

-- Aliases per context and state, kept by the database in the transaction
-- of each write, so the overview reads a handful of rows instead of
-- counting 100,000. Statement-level triggers with transition tables: the
-- ledger writes a whole batch in one statement, so an import of N aliases
-- costs one grouped update here, not N.
CREATE TABLE IF NOT EXISTS alias_counts (
    context VARCHAR(50) NOT NULL,
    is_active BOOLEAN NOT NULL,
    n BIGINT NOT NULL,
    PRIMARY KEY (context, is_active)
);
INSERT INTO alias_counts (context, is_active, n)
SELECT context, is_active, count(*) FROM aliases GROUP BY context, is_active
ON CONFLICT (context, is_active) DO UPDATE SET n = EXCLUDED.n;

CREATE OR REPLACE FUNCTION alias_counts_apply() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        INSERT INTO alias_counts AS c (context, is_active, n)
        SELECT context, is_active, count(*) FROM new_rows GROUP BY context, is_active
        ON CONFLICT (context, is_active) DO UPDATE SET n = c.n + EXCLUDED.n;
    END IF;
    IF TG_OP IN ('DELETE', 'UPDATE') THEN
        UPDATE alias_counts c SET n = c.n - o.k
        FROM (SELECT context, is_active, count(*) AS k FROM old_rows GROUP BY context, is_active) o
        WHERE c.context = o.context AND c.is_active = o.is_active;
    END IF;
    RETURN NULL;
END $$;
DROP TRIGGER IF EXISTS alias_counts_insert ON aliases;
CREATE TRIGGER alias_counts_insert AFTER INSERT ON aliases
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION alias_counts_apply();
DROP TRIGGER IF EXISTS alias_counts_update ON aliases;
CREATE TRIGGER alias_counts_update AFTER UPDATE ON aliases
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION alias_counts_apply();
DROP TRIGGER IF EXISTS alias_counts_delete ON aliases;
CREATE TRIGGER alias_counts_delete AFTER DELETE ON aliases
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION alias_counts_apply();
