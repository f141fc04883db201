"""redis-py against dibs: a transactional pipeline and WATCH-based optimistic locking.

Usage: python3 pipeline_transaction.py PORT
Exits non-zero (an AssertionError) on any unexpected result.
"""
import sys
import threading

import redis


def main(port):
    client = redis.Redis(port=port, decode_responses=True)
    assert client.ping() is True
    client.delete("py:counter", "py:name", "py:set", "py:balance")

    # MULTI/EXEC through a transactional pipeline: replies come back in order, as Python values.
    with client.pipeline(transaction=True) as pipe:
        pipe.incr("py:counter")
        pipe.incr("py:counter")
        pipe.set("py:name", "dibs")
        pipe.get("py:name")
        pipe.sadd("py:set", "a", "b", "a")
        pipe.smembers("py:set")
        results = pipe.execute()
    assert results == [1, 2, True, "dibs", 2, {"a", "b"}], results

    # An error inside EXEC is returned in place; the other commands still ran.
    with client.pipeline(transaction=True) as pipe:
        pipe.set("py:text", "x")
        pipe.incr("py:text")
        pipe.incr("py:counter")
        results = pipe.execute(raise_on_error=False)
    assert results[0] is True, results
    assert isinstance(results[1], redis.ResponseError), results
    assert "not an integer" in str(results[1]), results
    assert results[2] == 3, results

    # A non-transactional pipeline.
    with client.pipeline(transaction=False) as pipe:
        for index in range(100):
            pipe.set(f"py:key:{index}", index)
        for index in range(100):
            pipe.get(f"py:key:{index}")
        results = pipe.execute()
    assert results[:100] == [True] * 100
    assert results[100:] == [str(index) for index in range(100)]

    # Optimistic locking: WATCH, read, MULTI, write, EXEC; retried when another client interferes.
    client.set("py:balance", 100)
    other = redis.Redis(port=port, decode_responses=True)
    attempts = 0
    with client.pipeline() as pipe:
        while True:
            attempts += 1
            try:
                pipe.watch("py:balance")
                balance = int(pipe.get("py:balance"))
                if attempts == 1:
                    # Someone else changes the key between our read and our EXEC.
                    other.incrby("py:balance", 50)
                pipe.multi()
                pipe.set("py:balance", balance - 30)
                pipe.execute()
                break
            except redis.WatchError:
                continue
    assert attempts == 2, attempts
    assert client.get("py:balance") == "120", client.get("py:balance")

    # Concurrent increments through WATCH loops: none is lost.
    client.set("py:shared", 0)

    def worker():
        connection = redis.Redis(port=port, decode_responses=True)
        for _ in range(50):
            with connection.pipeline() as pipe:
                while True:
                    try:
                        pipe.watch("py:shared")
                        value = int(pipe.get("py:shared"))
                        pipe.multi()
                        pipe.set("py:shared", value + 1)
                        pipe.execute()
                        break
                    except redis.WatchError:
                        continue

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert client.get("py:shared") == "200", client.get("py:shared")

    # RESP3 through redis-py, when the installed version supports it.
    try:
        resp3 = redis.Redis(port=port, protocol=3, decode_responses=True)
        assert resp3.get("py:missing") is None
        assert resp3.smembers("py:set") == {"a", "b"}
    except TypeError:
        pass  # redis-py older than 5 has no protocol argument
    print("ok")


if __name__ == "__main__":
    main(int(sys.argv[1]))
