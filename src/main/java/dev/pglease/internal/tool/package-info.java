/**
 * What the command-line tool and the demo share (not API): small connection pools, an embedded PostgreSQL server,
 * duration options, and the JSON-lines events of the {@code node} command that the demo's chargers also write.
 */
package dev.pglease.internal.tool;
