package org.kdbusbridge.bridge.embedded;

import java.lang.annotation.Documented;
import java.lang.annotation.ElementType;
import java.lang.annotation.Retention;
import java.lang.annotation.RetentionPolicy;
import java.lang.annotation.Target;

/**
 * Marks a {@code String} parameter of a test constructor, test method or lifecycle method
 * ({@code @BeforeAll}, {@code @BeforeEach}, ...) that {@link KdbusBridgeExtension} fills with the
 * address of the test class's embedded bus, e.g. {@code unix:path=/tmp/kdbus-bridge-123/bus,guid=...}.
 */
@Documented
@Retention(RetentionPolicy.RUNTIME)
@Target(ElementType.PARAMETER)
public @interface BusAddress {
}
