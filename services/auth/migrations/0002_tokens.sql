-- Refresh tokens are opaque; only their SHA-256 is stored. Every token belongs to a family
-- (one login session): presenting a token that was already used revokes its whole family.
CREATE TABLE refresh_tokens (
    id uuid PRIMARY KEY,
    family_id uuid NOT NULL,
    user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token_hash bytea NOT NULL UNIQUE,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    used_at timestamptz,
    revoked_at timestamptz
);
CREATE INDEX refresh_tokens_family_idx ON refresh_tokens (family_id);

-- Signing keys (Ed25519), shared by every auth instance. The newest unretired key signs;
-- a retired key stays published until the last token it signed has expired.
CREATE TABLE signing_keys (
    kid text PRIMARY KEY,
    private_key_pem text NOT NULL,
    public_jwk jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    retired_at timestamptz
);
