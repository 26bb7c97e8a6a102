// JUnit 5 extension: one fresh embedded kdbus-bridge bus per test class.
//
// Invariants:
// - Each test class (a @Nested class counts as its own class) gets its own EmbeddedBus, started
//   before the class's @BeforeAll methods run, or earlier if a PER_CLASS test constructor asks
//   for it, and closed in afterAll, after the class's @AfterAll methods.
// - The bus lives in the class-level ExtensionContext store under the test class; every method
//   of that class (and every invocation of a parameterized or repeated test) sees the same bus.
// - Parameters: EmbeddedBus, and String parameters annotated @BusAddress. Nothing else is resolved.
// - JUnit is an optional (provided) dependency of the bridge module; only this class and nothing
//   on the bus's own path refers to it.
package org.kdbusbridge.bridge.embedded;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.Objects;

import org.junit.jupiter.api.extension.AfterAllCallback;
import org.junit.jupiter.api.extension.BeforeAllCallback;
import org.junit.jupiter.api.extension.ExtensionContext;
import org.junit.jupiter.api.extension.ParameterContext;
import org.junit.jupiter.api.extension.ParameterResolutionException;
import org.junit.jupiter.api.extension.ParameterResolver;

/**
 * Gives each test class a fresh in-process bus.
 *
 * <pre>{@code
 * @ExtendWith(KdbusBridgeExtension.class)
 * class MyTest {
 *     @Test
 *     void talks(@BusAddress String address) throws Exception {
 *         try (DBusConnection c = DBusConnectionBuilder.forAddress(address).withShared(false).build()) { ... }
 *     }
 * }
 * }</pre>
 *
 * Parameters of type {@link EmbeddedBus}, and {@code String} parameters annotated
 * {@link BusAddress}, are resolved in constructors, test methods and lifecycle methods. For
 * options (limits, listen address) register it as a field instead:
 * {@code @RegisterExtension static final KdbusBridgeExtension BUS =
 * new KdbusBridgeExtension(EmbeddedBus.builder().limit("max_outgoing_bytes", 1 << 20));}
 */
public final class KdbusBridgeExtension implements BeforeAllCallback, AfterAllCallback, ParameterResolver {
    private static final ExtensionContext.Namespace NAMESPACE =
            ExtensionContext.Namespace.create(KdbusBridgeExtension.class);

    private final EmbeddedBus.Builder builder;

    /** Each class gets {@link EmbeddedBus#start()}: a session bus on a private temporary socket. */
    public KdbusBridgeExtension() {
        this(EmbeddedBus.builder());
    }

    /**
     * Each class gets {@code builder.start()}. Do not change the builder afterwards; with a fixed
     * {@link EmbeddedBus.Builder#listen listen} address, test classes must not run in parallel.
     */
    public KdbusBridgeExtension(EmbeddedBus.Builder builder) {
        this.builder = Objects.requireNonNull(builder, "builder");
    }

    @Override
    public void beforeAll(ExtensionContext context) {
        bus(context);
    }

    @Override
    public void afterAll(ExtensionContext context) {
        EmbeddedBus bus = context.getStore(NAMESPACE).remove(context.getRequiredTestClass(), EmbeddedBus.class);
        if (bus != null) {
            bus.close();
        }
    }

    @Override
    public boolean supportsParameter(ParameterContext parameter, ExtensionContext context) {
        return parameter.getParameter().getType() == EmbeddedBus.class || parameter.isAnnotated(BusAddress.class);
    }

    @Override
    public Object resolveParameter(ParameterContext parameter, ExtensionContext context) {
        Class<?> type = parameter.getParameter().getType();
        if (type == EmbeddedBus.class) {
            return bus(context);
        }
        if (type != String.class) {
            throw new ParameterResolutionException("@BusAddress needs a String parameter, but "
                    + parameter.getParameter() + " of " + parameter.getDeclaringExecutable() + " is a " + type.getName());
        }
        return bus(context).address();
    }

    /** The bus of the test class context belongs to, started on first use. */
    private EmbeddedBus bus(ExtensionContext context) {
        ExtensionContext classContext = context;
        while (classContext.getTestMethod().isPresent() && classContext.getParent().isPresent()) {
            classContext = classContext.getParent().get();
        }
        Class<?> testClass = classContext.getRequiredTestClass();
        return classContext.getStore(NAMESPACE).getOrComputeIfAbsent(testClass, c -> {
            try {
                return builder.start();
            } catch (IOException e) {
                throw new UncheckedIOException("Could not start the embedded bus for " + c.getName() + ": "
                        + e.getMessage(), e);
            }
        }, EmbeddedBus.class);
    }
}
