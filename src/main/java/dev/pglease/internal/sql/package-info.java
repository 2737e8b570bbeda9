/**
 * Every SQL statement pglease runs against its schema (not API), in named-statement classes, one class per concern,
 * shared by the library, its command-line tool and its Spring integration.
 */
package dev.pglease.internal.sql;
