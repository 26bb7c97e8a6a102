package org.kdbusbridge.core.bus;

import org.kdbusbridge.core.connection.Connection;

/** An open reply slot whose callee went away: the caller is owed a NoReply error. */
public record DeadReply(Connection caller, long serial) { }
