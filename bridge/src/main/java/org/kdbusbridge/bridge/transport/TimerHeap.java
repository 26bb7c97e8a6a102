package org.kdbusbridge.bridge.transport;

import java.util.Arrays;

import org.kdbusbridge.bridge.transport.EventLoop.Timer;

/**
 * The loop's pending timers: a binary min-heap by (deadline, scheduling order), with each
 * timer's position kept in the timer so a cancel removes it in O(log n) without a search.
 * Loop thread only.
 *
 * Invariants: slots [0, size) hold distinct timers, each with heapIndex equal to its slot, and
 * none orders before its parent; slots from size on are null; a timer not in the heap has
 * heapIndex -1.
 */
final class TimerHeap {
    private Timer[] heap = new Timer[64];
    private int size;

    int size() {
        return size;
    }

    /** The earliest timer, or null. */
    Timer peek() {
        return size == 0 ? null : heap[0];
    }

    void add(Timer t) {
        assert t.heapIndex == -1 : "timer already queued";
        if (size == heap.length) {
            heap = Arrays.copyOf(heap, size * 2);
        }
        int i = size++;
        heap[i] = t;
        t.heapIndex = i;
        siftUp(i);
    }

    /** Removes t if it is queued here; a no-op otherwise (a cancel after it fired). */
    void remove(Timer t) {
        int i = t.heapIndex;
        if (i < 0 || i >= size || heap[i] != t) {
            return;
        }
        int last = --size;
        t.heapIndex = -1;
        if (i == last) {
            heap[last] = null;
            return;
        }
        Timer moved = heap[last];
        heap[last] = null;
        heap[i] = moved;
        moved.heapIndex = i;
        siftDown(i);
        if (heap[i] == moved) {
            siftUp(i);
        }
    }

    /** Removes and returns the earliest timer; the heap must not be empty. */
    Timer poll() {
        Timer top = heap[0];
        remove(top);
        return top;
    }

    private void siftUp(int i) {
        Timer t = heap[i];
        while (i > 0) {
            int p = (i - 1) >>> 1;
            Timer pt = heap[p];
            if (t.compareTo(pt) >= 0) {
                break;
            }
            heap[i] = pt;
            pt.heapIndex = i;
            i = p;
        }
        heap[i] = t;
        t.heapIndex = i;
    }

    private void siftDown(int i) {
        Timer t = heap[i];
        int half = size >>> 1;
        while (i < half) {
            int c = 2 * i + 1;
            int r = c + 1;
            if (r < size && heap[r].compareTo(heap[c]) < 0) {
                c = r;
            }
            if (t.compareTo(heap[c]) <= 0) {
                break;
            }
            heap[i] = heap[c];
            heap[i].heapIndex = i;
            i = c;
        }
        heap[i] = t;
        t.heapIndex = i;
    }

    /** Throws IllegalStateException naming the first broken invariant. */
    void checkInvariants() {
        for (int i = 0; i < size; i++) {
            Timer t = heap[i];
            if (t == null || t.heapIndex != i) {
                throw new IllegalStateException("slot " + i + " holds " + (t == null ? "null" : "index " + t.heapIndex));
            }
            if (i > 0 && t.compareTo(heap[(i - 1) >>> 1]) < 0) {
                throw new IllegalStateException("slot " + i + " orders before its parent");
            }
        }
        for (int i = size; i < heap.length; i++) {
            if (heap[i] != null) {
                throw new IllegalStateException("slot " + i + " past the end is not null");
            }
        }
    }
}
