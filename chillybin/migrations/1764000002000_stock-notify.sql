-- Up Migration

-- Every change to the stock, by whichever chillybin instance (or psql), is announced on the
-- `stock_changed` channel once per statement with the rows it wrote, so each instance keeps an
-- in-memory copy for GET / and GET /events without reading the table. NOTIFY is transactional:
-- a rolled-back change is never announced, and announcements arrive in commit order.
-- Payloads: {"xid", "set": {name: quantity}} | {"xid", "deleted": [name]} | {"xid", "reload": true}
-- (TRUNCATE, or a change too big for one notification). Picks add their own {"pick": {…}}.
CREATE FUNCTION chillybin_stock_changed() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  payload text;
BEGIN
  IF TG_OP = 'TRUNCATE' THEN
    payload := json_build_object('xid', txid_current()::text, 'reload', true)::text;
  ELSIF TG_OP = 'DELETE' THEN
    SELECT json_build_object('xid', txid_current()::text, 'deleted', json_agg(name))::text
      INTO payload FROM old_rows HAVING count(*) > 0;
  ELSE
    SELECT json_build_object('xid', txid_current()::text, 'set', json_object_agg(name, quantity))::text
      INTO payload FROM new_rows HAVING count(*) > 0;
  END IF;
  IF payload IS NULL THEN
    RETURN NULL; -- the statement changed no rows
  END IF;
  IF octet_length(payload) > 7900 THEN -- NOTIFY payloads must stay under 8000 bytes
    payload := json_build_object('xid', txid_current()::text, 'reload', true)::text;
  END IF;
  PERFORM pg_notify('stock_changed', payload);
  RETURN NULL;
END
$$;

-- Transition tables allow one event per trigger, hence four triggers on one function.
CREATE TRIGGER ingredients_inserted AFTER INSERT ON ingredients
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION chillybin_stock_changed();
CREATE TRIGGER ingredients_updated AFTER UPDATE ON ingredients
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION chillybin_stock_changed();
CREATE TRIGGER ingredients_deleted AFTER DELETE ON ingredients
  REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION chillybin_stock_changed();
CREATE TRIGGER ingredients_truncated AFTER TRUNCATE ON ingredients
  FOR EACH STATEMENT EXECUTE FUNCTION chillybin_stock_changed();

-- Down Migration

DROP TRIGGER ingredients_truncated ON ingredients;
DROP TRIGGER ingredients_deleted ON ingredients;
DROP TRIGGER ingredients_updated ON ingredients;
DROP TRIGGER ingredients_inserted ON ingredients;
DROP FUNCTION chillybin_stock_changed();
