-- The application's own migration, run by Spring Boot's Flyway auto-configuration beside pglease's.
CREATE TABLE ${flyway:defaultSchema}.reports (
    id    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    token bigint NOT NULL
);
