// Invariants: keys are compared by identity and held weakly: an entry goes once its key is
// unreachable (swept on the next put or get); a key put twice while the first is alive becomes
// ambiguous and get() answers null for it from then on.
package org.kdbusbridge.bridge.client.dbusjava;

import java.lang.ref.Reference;
import java.lang.ref.ReferenceQueue;
import java.lang.ref.WeakReference;
import java.util.HashMap;
import java.util.Map;

/** A small synchronized map by key identity with weak keys (the JDK has WeakHashMap by equals only). */
final class WeakIdentityMap<K, V> {
    private static final Object AMBIGUOUS = new Object();

    private final Map<Key<K>, Object> map = new HashMap<>();
    private final ReferenceQueue<K> queue = new ReferenceQueue<>();

    synchronized void put(K key, V value) {
        sweep();
        Key<K> k = new Key<>(key, queue);
        Object old = map.putIfAbsent(k, value);
        if (old != null) {
            map.put(k, AMBIGUOUS);
        }
    }

    @SuppressWarnings("unchecked")
    synchronized V get(K key) {
        sweep();
        Object v = map.get(new Key<>(key, null));
        return v == AMBIGUOUS ? null : (V) v;
    }

    synchronized int size() {
        sweep();
        return map.size();
    }

    private void sweep() {
        for (Reference<? extends K> r; (r = queue.poll()) != null; ) {
            map.remove(r);
        }
    }

    private static final class Key<K> extends WeakReference<K> {
        private final int hash;

        Key(K referent, ReferenceQueue<K> queue) {
            super(referent, queue);
            hash = System.identityHashCode(referent);
        }

        @Override
        public int hashCode() {
            return hash;
        }

        @Override
        public boolean equals(Object o) {
            if (this == o) {
                return true;
            }
            if (!(o instanceof Key)) {
                return false;
            }
            Object mine = get();
            return mine != null && mine == ((Key<?>) o).get();
        }
    }
}
