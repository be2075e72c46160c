-- Up Migration

-- Who ordered what, when (UTC). An order picked with an Idempotency-Key keeps the key and a
-- hash of the request, so a retry replays it and a different request under the same key is
-- refused.
CREATE TABLE orders (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  customer text NOT NULL CONSTRAINT orders_customer_length CHECK (char_length(customer) BETWEEN 1 AND 64),
  created_at timestamptz NOT NULL DEFAULT now(),
  idempotency_key text CONSTRAINT orders_idempotency_key_unique UNIQUE
    CONSTRAINT orders_idempotency_key_length CHECK (char_length(idempotency_key) BETWEEN 1 AND 255),
  request_hash text,
  CONSTRAINT orders_key_has_hash CHECK ((idempotency_key IS NULL) = (request_hash IS NULL))
);

CREATE INDEX orders_created_at_idx ON orders (created_at DESC, id DESC);
CREATE INDEX orders_customer_created_at_idx ON orders (customer, created_at DESC, id DESC);

CREATE TABLE order_items (
  order_id uuid NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
  ingredient text NOT NULL REFERENCES ingredients (name),
  quantity integer NOT NULL CONSTRAINT order_items_quantity_range CHECK (quantity BETWEEN 1 AND 100),
  PRIMARY KEY (order_id, ingredient)
);

CREATE INDEX order_items_ingredient_idx ON order_items (ingredient);

-- Down Migration

DROP TABLE order_items;
DROP TABLE orders;
