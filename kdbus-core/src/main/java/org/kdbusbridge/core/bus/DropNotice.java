package org.kdbusbridge.core.bus;

/**
 * What {@link Bus#takeDropNotice} decided a connection must be told (the MessagesDropped
 * signal): it missed {@code count} broadcasts, the first with sequence number {@code firstSeq},
 * the last with {@code lastSeq} ({@code firstSeq <= lastSeq}; messages between them that its
 * rules did not select, or that it did receive, are not counted).
 */
public record DropNotice(long count, long firstSeq, long lastSeq) {
}
