package org.kdbusbridge.bridge.transport;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.TreeSet;

import org.junit.jupiter.api.Test;
import org.kdbusbridge.bridge.transport.EventLoop.Timer;

/** TimerHeap against a sorted-set model: random adds, cancels and polls, invariants after each step. */
class TimerHeapTest {
    @Test
    void matchesASortedSetModel() {
        for (long seed = 1; seed <= 5; seed++) {
            Random rnd = new Random(seed);
            TimerHeap heap = new TimerHeap();
            TreeSet<Timer> model = new TreeSet<>();
            List<Timer> all = new ArrayList<>();
            long seq = 0;
            for (int step = 0; step < 4000; step++) {
                int op = rnd.nextInt(10);
                if (op < 5 || model.isEmpty()) {
                    // Few distinct deadlines, so equal deadlines (ordered by seq) are common.
                    Timer t = new Timer(null, () -> { }, rnd.nextInt(50), seq++);
                    heap.add(t);
                    model.add(t);
                    all.add(t);
                } else if (op < 8) {
                    Timer t = all.get(rnd.nextInt(all.size()));
                    heap.remove(t); // a no-op for one already gone
                    model.remove(t);
                    assertEquals(-1, t.heapIndex);
                } else {
                    Timer expected = model.pollFirst();
                    assertSame(expected, heap.poll(), "seed " + seed + " step " + step);
                }
                heap.checkInvariants();
                assertEquals(model.size(), heap.size());
                assertSame(model.isEmpty() ? null : model.first(), heap.peek());
            }
            while (!model.isEmpty()) {
                assertSame(model.pollFirst(), heap.poll());
                heap.checkInvariants();
            }
            assertNull(heap.peek());
        }
    }
}
