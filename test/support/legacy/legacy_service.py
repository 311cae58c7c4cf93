"""The legacy service as it ran before the package: redis-py, one command at a time.

It writes a job as HSET job:<id> then RPUSH queue:<name> <id>, and consumes with LPOP, setting the
status in the legacy record only and giving a finished job an expiry, as the old service did. Its
job ids hold dots ("order.17"), as many legacy stores' do. It prints what it did as one JSON line.

usage: legacy_service.py <redis-url> <queue> <jobs to write> <seconds to consume for>
"""
import json
import sys
import threading
import time

import redis


def now_ms():
    return str(int(time.time() * 1000))


def produce(client, queue, count, done):
    for i in range(count):
        job_id = f"order.{i}"
        stamp = now_ms()
        client.hset(f"job:{job_id}", mapping={
            "id": job_id, "workspace_id": f"ws{i % 3}", "type": "legacy.send",
            "payload": json.dumps({"n": i}), "status": "queued", "created_at": stamp, "updated_at": stamp,
        })
        client.rpush(queue, job_id)
        done["written"] += 1
        time.sleep(0.002)


def consume(client, queue, seconds, done):
    deadline = time.time() + seconds
    while time.time() < deadline:
        entry = client.lpop(queue)
        if entry is None:
            time.sleep(0.005)
            continue
        key = f"job:{entry.decode()}"
        time.sleep(0.002)  # the old service's work; its updates come strictly after the job was made
        client.hset(key, mapping={"status": "running", "updated_at": now_ms()})
        time.sleep(0.002)
        client.hset(key, mapping={"status": "succeeded", "updated_at": now_ms()})
        client.expire(key, 86400)
        done["consumed"] += 1


def main():
    url, queue, count, seconds = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
    done = {"written": 0, "consumed": 0}
    writer = threading.Thread(target=produce, args=(redis.Redis.from_url(url), queue, count, done))
    reader = threading.Thread(target=consume, args=(redis.Redis.from_url(url), queue, seconds, done))
    writer.start()
    reader.start()
    writer.join()
    reader.join()
    print(json.dumps(done))


if __name__ == "__main__":
    main()
