-- Up Migration

-- New order ids are time-ordered UUIDs (version 7, RFC 9562: 48 bits of Unix milliseconds, then
-- random bits). A random (version 4) id lands each new order on a random page of the orders
-- primary key and of order_items' (order_id, ingredient) key, so with a million orders every pick
-- dirtied pages all over both indexes — and wrote each whole to the WAL after a checkpoint. A
-- time-ordered id appends at their right-hand edge. Ids stay opaque UUIDs to clients; existing
-- orders keep theirs. (PostgreSQL 18 has uuidv7(); 15–17 do not.)
CREATE FUNCTION chillybin_uuid_v7() RETURNS uuid LANGUAGE sql VOLATILE AS $$
  SELECT encode(
    set_bit(set_bit(
      overlay(uuid_send(gen_random_uuid())
              PLACING substring(int8send((extract(epoch FROM clock_timestamp()) * 1000)::bigint) FROM 3)
              FROM 1 FOR 6),
      52, 1), 53, 1), -- version 4 (0100) becomes 7 (0111); the variant bits stay RFC 9562's
    'hex')::uuid
$$;

ALTER TABLE orders ALTER COLUMN id SET DEFAULT chillybin_uuid_v7();

-- Down Migration

ALTER TABLE orders ALTER COLUMN id SET DEFAULT gen_random_uuid();
DROP FUNCTION chillybin_uuid_v7();
