/**
 * pglease: leader election and fenced leases on PostgreSQL.
 *
 * <p>The API is {@code dev.pglease} (entry point {@link dev.pglease.PgLease}) and the optional integrations
 * {@code dev.pglease.health}, {@code dev.pglease.http}, {@code dev.pglease.micrometer}, {@code dev.pglease.shedlock}
 * and {@code dev.pglease.spring}, each usable only when its library is present. The command-line tool and the demo
 * ({@code dev.pglease.cli}, {@code dev.pglease.demo}) ship in the same jar for {@code java -jar pglease-all.jar}
 * but are not exported: they are not API, and neither are the packages under {@code dev.pglease.internal}, named
 * for their role: {@code election} (the election engine), {@code store} (storage and start-up checks), {@code sql}
 * (every statement, by concern), {@code util} (helpers) and {@code tool} (what the command-line tool and the demo
 * share).
 */
module dev.pglease {
    requires transitive java.sql;
    requires org.postgresql.jdbc;
    requires flyway.core;
    requires org.slf4j;

    // optional integrations: present at run time only when the application has them
    requires static micrometer.core;
    requires static net.javacrumbs.shedlock.core;
    requires static spring.aop;
    requires static spring.beans;
    requires static spring.context;
    requires static spring.core;
    requires static spring.boot;
    requires static spring.boot.autoconfigure;
    requires static spring.boot.health;
    requires static spring.boot.actuator;
    requires static spring.jdbc;
    requires static spring.tx;
    requires static spring.web;
    requires static spring.webmvc;
    requires static jakarta.servlet;

    // command-line tool and demo (bundled in the -all jar)
    requires static com.zaxxer.hikari;
    requires static info.picocli;
    requires static com.fasterxml.jackson.databind;
    requires static embedded.postgres;
    requires static java.net.http;
    requires static jdk.httpserver;
    requires static jdk.unsupported; // sun.misc.Signal: the CLI handles SIGTERM/SIGINT

    exports dev.pglease;
    exports dev.pglease.health;
    exports dev.pglease.http;
    exports dev.pglease.micrometer;
    exports dev.pglease.shedlock;
    exports dev.pglease.spring;

    // Spring creates the auto-configuration and reads @ConfigurationProperties reflectively
    opens dev.pglease.spring to
            spring.core,
            spring.beans,
            spring.context;
}
