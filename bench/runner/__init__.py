"""Run the attendance-live benchmarks: ours vs the Node.js Socket.IO peer vs the floor.

    .venv/bin/python bench/run.py --quick        # N=500, 2 rounds: a minute or two
    .venv/bin/python bench/run.py                # N=10,000, 3 rounds: under ten minutes

Scenarios (each prints p50/p99/max latency, throughput, server CPU seconds and
peak RSS, read from /proc for the server's process tree):

* fan-out  - N subscribers of one course; a session started over HTTP; latency
             from the request to courseSessionStarted at each subscriber.
* storm    - N clients connect, authenticate, subscribe and receive their
             activeSessionsData snapshot at once: time until all have it.
* memory   - server RSS per idle subscribed connection.
* check-in - 1,000 students check in over HTTP within one second (open loop,
             evenly spread; --dup of them send twice at the same instant);
             latency, and the exact final count (the rate printed is the
             schedule's, offered open loop, not the server's capacity). Ours
             runs the session in `code` mode: the generator reads the current code as the teacher
             (GET /api/sessions/{id}/check-in-code) and every student sends it
             (the peer has no codes: open mode). Durable SQLite.
* checkin-pg - the same burst on PostgreSQL (fsync and synchronous commits
             on) with two of our nodes over Redis, the students split between
             them (ours only; needs Debian's postgresql and redis-server).
* stalled  - the fan-out again, in the same round and with the same N
             subscribers, after 1 % of them (--stalled-fraction) stopped
             reading their socket (connected and subscribed, never reading);
             latency to the others, reported beside the same round's fan-out
             without them (target: p99 within 1.1x).
* nodes    - fan-out across two of our nodes over Redis (ours only).
* nodes3   - N over three of our nodes sharing PostgreSQL and Redis, each
             node under 20,000 open files: fan-out through one node to every
             client, the storm spread over the three, every client served
             exactly once (ours only; on its own: --scenarios nodes3).

Peak RSS is each node's VmHWM, summed over the nodes a scenario runs. Rounds
alternate the order of the servers; each round starts every server afresh.
Results: a table on stdout and JSON in bench/results/. Loopback only; every
load is bounded in count and time.

The modules, each readable alone: :mod:`.servers` (processes and /proc),
:mod:`.harness` (what every scenario shares), :mod:`.fanout` and
:mod:`.checkin` and :mod:`.nodes3` (the scenarios), :mod:`.reporting` (the table) and
:mod:`.cli` (options and rounds). ``bench/run.py`` is the command.
"""
