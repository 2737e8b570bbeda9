/**
 * Small helpers shared by the library and its tools (not API): name rules, password redaction, the notification
 * payload reader, transaction helpers.
 */
package dev.pglease.internal.util;
