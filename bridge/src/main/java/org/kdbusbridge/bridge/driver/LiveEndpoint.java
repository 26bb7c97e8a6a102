package org.kdbusbridge.bridge.driver;

import org.kdbusbridge.core.connection.Connection;
import org.kdbusbridge.core.endpoint.EndpointFilter;

/**
 * An endpoint that still exists as a container instance (Containers1): listening, or no longer
 * listening but with connections left. {@code creator} may be null (nobody's endpoint).
 */
public record LiveEndpoint(String id, EndpointFilter filter, Connection creator, boolean listening) { }
