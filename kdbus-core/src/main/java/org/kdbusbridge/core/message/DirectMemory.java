package org.kdbusbridge.core.message;

import java.lang.reflect.Field;
import java.lang.reflect.Method;
import java.nio.ByteBuffer;

/**
 * Frees a direct buffer's native memory at once instead of waiting for the GC
 * (sun.misc.Unsafe.invokeCleaner, in jdk.unsupported). If that is not available the buffer is
 * simply left to the GC, as before.
 */
public final class DirectMemory {
    private DirectMemory() { }

    private static final Object UNSAFE;
    private static final Method INVOKE_CLEANER;

    static {
        Object unsafe = null;
        Method invoke = null;
        try {
            Class<?> c = Class.forName("sun.misc.Unsafe");
            Field f = c.getDeclaredField("theUnsafe");
            f.setAccessible(true);
            unsafe = f.get(null);
            invoke = c.getMethod("invokeCleaner", ByteBuffer.class);
        } catch (ReflectiveOperationException | RuntimeException e) {
            unsafe = null;
            invoke = null;
        }
        UNSAFE = unsafe;
        INVOKE_CLEANER = invoke;
    }

    /** Frees {@code allocated}'s native memory now; a slice, duplicate or heap buffer is left to the GC. */
    public static void release(ByteBuffer allocated) {
        if (INVOKE_CLEANER == null || !allocated.isDirect()) {
            return;
        }
        try {
            INVOKE_CLEANER.invoke(UNSAFE, allocated);
        } catch (ReflectiveOperationException | RuntimeException e) {
            // a slice or duplicate, or no cleaner: the GC frees it later
        }
    }
}
