-- Eddie's marketplace: users, items with owners, the notice every user sees.
CREATE TABLE IF NOT EXISTS users (
    id      uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name    text NOT NULL,
    email   text NOT NULL UNIQUE,
    created timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS items (
    id    uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    title text NOT NULL,
    owner uuid NOT NULL REFERENCES users (id)
);
-- One notice for everybody, with no per-user read state.
CREATE TABLE IF NOT EXISTS notice (
    id     integer PRIMARY KEY CHECK (id = 1),
    text   text NOT NULL,
    set_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO users (id, name, email) VALUES
    ('00000000-0000-4000-8000-000000000001', 'Alice', 'alice@eddie.lab'),
    ('00000000-0000-4000-8000-000000000002', 'Bob', 'bob@eddie.lab')
ON CONFLICT DO NOTHING;
INSERT INTO items (id, title, owner) VALUES
    ('00000000-0000-4000-8000-000000000101', 'Bicycle, blue', '00000000-0000-4000-8000-000000000001'),
    ('00000000-0000-4000-8000-000000000102', 'Desk lamp', '00000000-0000-4000-8000-000000000001'),
    ('00000000-0000-4000-8000-000000000103', 'Guitar', '00000000-0000-4000-8000-000000000002'),
    ('00000000-0000-4000-8000-000000000104', 'Kayak', '00000000-0000-4000-8000-000000000002')
ON CONFLICT DO NOTHING;
GRANT SELECT, INSERT, UPDATE ON users, items, notice TO eddie;
