-- The seed's tables, exactly as the seed documents them ("user" is quoted:
-- it is a reserved word in PostgreSQL). Later migrations extend them; no
-- seed column is ever renamed.
CREATE TABLE IF NOT EXISTS aliases (
    id SERIAL PRIMARY KEY,
    alias VARCHAR(255) NOT NULL,
    canonical VARCHAR(500) NOT NULL,
    context VARCHAR(50) NOT NULL,
    description TEXT,
    expires_at TIMESTAMP,
    is_active BOOLEAN DEFAULT true,
    created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
    updated_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
    created_by VARCHAR(255)
);

CREATE TABLE IF NOT EXISTS audit_logs (
    id SERIAL PRIMARY KEY,
    action VARCHAR(100) NOT NULL,
    "user" VARCHAR(255) NOT NULL,
    details TEXT,
    created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
    is_archived BOOLEAN DEFAULT false,
    archived_at TIMESTAMP
);

CREATE TABLE IF NOT EXISTS conflicts (
    id SERIAL PRIMARY KEY,
    alias VARCHAR(255) NOT NULL,
    context VARCHAR(50) NOT NULL,
    conflict_type VARCHAR(50) NOT NULL,
    resolution VARCHAR(100),
    resolved_at TIMESTAMP,
    created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP
);

-- The seed names this table without listing its columns; these are ours.
CREATE TABLE IF NOT EXISTS governance_rules (
    id SERIAL PRIMARY KEY,
    name VARCHAR(100) NOT NULL,
    document JSONB NOT NULL,
    is_active BOOLEAN NOT NULL DEFAULT true,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    created_by VARCHAR(255) NOT NULL
);

CREATE INDEX IF NOT EXISTS idx_aliases_alias_context ON aliases(alias, context);
CREATE INDEX IF NOT EXISTS idx_audit_logs_created_at ON audit_logs(created_at);
CREATE INDEX IF NOT EXISTS idx_conflicts_created_at ON conflicts(created_at);
