/**
 * Storage (not API): the port the election engine talks to ({@code LeaseStore}, with its own types), its JDBC
 * adapters, the LISTEN connection, and the start-up checks of the database (pooling, privileges).
 */
package dev.pglease.internal.store;
