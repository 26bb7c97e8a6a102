package org.kdbusbridge.core.bus;

/**
 * What {@link Bus#attachMetadata} did: the connection's attach set before and after, and the
 * bus-wide demand after (every item at least one connection wants), all MessageFacts bits.
 */
public record AttachChange(int before, int after, int busWide) {
}
