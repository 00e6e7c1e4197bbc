-- SnekLog: animals, what they ate, when they shed, and their pictures'
-- keys in the S3 bucket (never the pictures themselves).
CREATE TABLE IF NOT EXISTS animals (id serial PRIMARY KEY, name text NOT NULL, species text NOT NULL DEFAULT '',
                                    created timestamptz NOT NULL DEFAULT now());
CREATE TABLE IF NOT EXISTS feedings (id serial PRIMARY KEY, animal_id integer NOT NULL REFERENCES animals (id),
                                     food text NOT NULL, at timestamptz NOT NULL DEFAULT now());
CREATE TABLE IF NOT EXISTS sheds (id serial PRIMARY KEY, animal_id integer NOT NULL REFERENCES animals (id),
                                  complete boolean NOT NULL, at timestamptz NOT NULL DEFAULT now());
CREATE TABLE IF NOT EXISTS pictures (id serial PRIMARY KEY, animal_id integer NOT NULL REFERENCES animals (id),
                                     s3_key text NOT NULL UNIQUE, content_type text, size integer NOT NULL,
                                     at timestamptz NOT NULL DEFAULT now());
INSERT INTO animals (id, name, species) VALUES (1, 'Monty', 'ball python'), (2, 'Noodle', 'corn snake')
ON CONFLICT DO NOTHING;
SELECT setval('animals_id_seq', greatest((SELECT max(id) FROM animals), 1));
GRANT SELECT, INSERT, UPDATE ON animals, feedings, sheds, pictures TO sneklog;
GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO sneklog;
