/**
 * The election engine (not API): the loop that campaigns for and renews every lease of a process, its timing
 * arithmetic, the grants it hands out, and the dispatch of listener and observer calls.
 */
package dev.pglease.internal.election;
