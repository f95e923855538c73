-- The lines each order asked for, so a repeated request is answered only if it asks for
-- the same lines (another request under the same order id is refused). NULL: a release
-- that arrived before any reservation, kept so that a late reservation finds it closed.
ALTER TABLE stock_orders ADD COLUMN requested jsonb;
UPDATE stock_orders s SET requested = (
    SELECT jsonb_object_agg(r.product_id, r.quantity) FROM reservation_lines r
    WHERE r.order_id = s.order_id
) WHERE s.status <> 'REJECTED';
