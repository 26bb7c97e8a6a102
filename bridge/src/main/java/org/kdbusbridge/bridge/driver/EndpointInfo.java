package org.kdbusbridge.bridge.driver;

import java.util.List;

/**
 * One custom endpoint as ListEndpoints shows it: its id, connect address, metadata (app id and
 * instance id, each may be null) and the xdg-dbus-proxy options it was made from.
 */
public record EndpointInfo(String id, String address, String appId, String instanceId, List<String> options) {
    public EndpointInfo {
        options = List.copyOf(options);
    }
}
