-- Up Migration

-- The CHECK is what makes overselling impossible: no statement, however it races, can take
-- an ingredient below zero.
CREATE TABLE ingredients (
  name text PRIMARY KEY CONSTRAINT ingredients_name_length CHECK (char_length(name) BETWEEN 1 AND 32),
  quantity integer NOT NULL CONSTRAINT ingredients_quantity_not_negative CHECK (quantity >= 0)
);

-- The stall's opening stock: the original's cheese, bread and vegemite, plus jafflr's menu.
INSERT INTO ingredients (name, quantity) VALUES
  ('bread', 10),
  ('cheese', 10),
  ('ham', 10),
  ('pineapple', 10),
  ('sheese', 10),
  ('tomato', 10),
  ('vegemite', 10);

-- Down Migration

DROP TABLE ingredients;
