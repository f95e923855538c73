-- The transactional outbox: events are written here in the same transaction as the
-- state change they describe, and a relay publishes them to Kafka afterwards. `seq`
-- keeps the order in which they were committed.
CREATE TABLE outbox (
    seq bigserial PRIMARY KEY,
    event_id uuid NOT NULL UNIQUE,
    topic text NOT NULL,
    key text NOT NULL,
    envelope jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    sent_at timestamptz
);
CREATE INDEX outbox_unsent_idx ON outbox (seq) WHERE sent_at IS NULL;

-- The inbox: every event a consumer group has applied, recorded in the same transaction
-- as its effect, so a redelivered event is recognised and skipped.
CREATE TABLE processed_events (
    consumer text NOT NULL,
    event_id uuid NOT NULL,
    processed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, event_id)
);
