package org.kdbusbridge.core.bus;

import java.util.List;

import org.kdbusbridge.core.name.NameChange;

/**
 * The transaction of a connection leaving: name changes (well-known names most recent first,
 * the unique name last) and the calls it will never answer.
 */
public record Disconnect(List<NameChange> nameChanges, List<DeadReply> deadReplies) { }
