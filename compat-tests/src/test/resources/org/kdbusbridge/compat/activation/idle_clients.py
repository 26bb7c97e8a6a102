# Several connections call the idle service in bursts with gaps longer than its idle timeout,
# so it keeps exiting and being re-activated. Every call must get exactly one reply.
# Prints: "calls N replies R errors E" and the error names seen.
import sys, threading, random, time, collections
import dbus

addr, clients, calls, gap_ms = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
results = collections.Counter()
errors = collections.Counter()
lock = threading.Lock()

def worker(seed):
    rnd = random.Random(seed)
    bus = dbus.bus.BusConnection(addr)
    for i in range(calls):
        try:
            r = bus.call_blocking('com.example.IdleEcho', '/com/example/IdleEcho', 'com.example.IdleEcho',
                                  'Echo', 'u', [i], timeout=30)
            ok = (r == i)
            with lock:
                results['reply' if ok else 'wrong'] += 1
        except dbus.exceptions.DBusException as e:
            with lock:
                results['error'] += 1
                errors[e.get_dbus_name()] += 1
        if rnd.random() < 0.3:
            time.sleep(gap_ms / 1000.0 * rnd.uniform(0.5, 2.0))  # workload shape: let the service go idle

threads = [threading.Thread(target=worker, args=(s,)) for s in range(clients)]
for t in threads: t.start()
for t in threads: t.join()
print('calls %d replies %d wrong %d errors %d' % (clients * calls, results['reply'], results['wrong'], results['error']))
for k, v in errors.items():
    print('error %s %d' % (k, v))
