-- A migration that runs after every shipped one and fails: SchemaMigrationTest checks that nothing stays applied.
CREATE TABLE ${flyway:defaultSchema}.planted_before_failure (id int);
DO $$ BEGIN RAISE EXCEPTION 'planted failure after the shipped migrations' USING HINT = 'this is a test'; END $$;
