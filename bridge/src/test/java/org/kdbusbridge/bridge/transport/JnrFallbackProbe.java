package org.kdbusbridge.bridge.transport;

import org.kdbusbridge.bridge.cli.Posix;

/** Run by JniLibCTest in a JVM of its own: prints the binding, errno of close(-1) and whether Posix is JNI. */
public final class JnrFallbackProbe {
    private JnrFallbackProbe() {
    }

    public static void main(String[] args) {
        LibC.INSTANCE.close(-1);
        int errno = LibC.Native.errno();
        System.out.println(LibC.Native.binding() + " " + errno + " " + (Posix.INSTANCE instanceof Posix.Jni));
    }
}
