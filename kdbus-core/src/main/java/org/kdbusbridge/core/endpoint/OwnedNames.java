package org.kdbusbridge.core.endpoint;

import java.util.List;

/**
 * The well-known names a unique name is the primary owner of, as the bus knows them now
 * (queued, not-yet-owner names do not count: the proxy learns owners from NameOwnerChanged
 * and GetNameOwner). The decisions read it only for unique names; it keeps them free of the
 * name registry. For the NameOwnerChanged of a departing unique name, pass the names it owned
 * just before it left (see docs/endpoint-semantics.md).
 */
@FunctionalInterface
public interface OwnedNames {
    /** Never null; empty for a name that owns nothing or is not connected. */
    Iterable<String> primaryNamesOf(String uniqueName);

    OwnedNames NONE = unique -> List.of();
}
