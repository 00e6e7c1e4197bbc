"""The service bus between api nodes, standing in for Nameko's events on
RabbitMQ (Debian has no Nameko; python3-pika is what Nameko's events are
underneath): a fan-out exchange that every api node binds its own queue to.
An update publishes the changed id; every node drops exactly that entry.
When the bus comes back after being away, a node clears its whole cache,
since it may have missed flushes: no node serves stale data for longer than
the outage."""
import logging
import threading
import time

import pika

EXCHANGE = "eddie.cache"
log = logging.getLogger("eddie.bus")


class Bus:
    def __init__(self, host, user, password, on_flush, on_reconnect):
        self.params = pika.ConnectionParameters(
            host=host, credentials=pika.PlainCredentials(user, password), heartbeat=10,
            connection_attempts=1, socket_timeout=2, blocked_connection_timeout=2)
        self.on_flush, self.on_reconnect = on_flush, on_reconnect
        self.lock = threading.Lock()
        self.pub = None
        self.connected = threading.Event()
        threading.Thread(target=self._consume, name="bus", daemon=True).start()

    def _consume(self):
        first = True
        while True:
            try:
                conn = pika.BlockingConnection(self.params)
                ch = conn.channel()
                ch.exchange_declare(EXCHANGE, exchange_type="fanout")
                q = ch.queue_declare("", exclusive=True, auto_delete=True).method.queue
                ch.queue_bind(q, EXCHANGE)
                if not first:
                    self.on_reconnect()
                first = False
                self.connected.set()
                log.info("bus: listening on %s", q)
                ch.basic_consume(q, lambda c, m, p, body: self.on_flush(body), auto_ack=True)
                ch.start_consuming()
            except Exception as e:  # the bus is away: try again, every second
                if self.connected.is_set():
                    log.warning("bus: lost (%s)", e)
                self.connected.clear()
                time.sleep(1)

    def publish(self, body):
        """Sends body to every node; False when the bus is away (the update
        itself stands: other nodes catch up when it returns)."""
        with self.lock:
            for _ in range(2):
                try:
                    if self.pub is None or self.pub.is_closed:
                        conn = pika.BlockingConnection(self.params)
                        ch = conn.channel()
                        ch.exchange_declare(EXCHANGE, exchange_type="fanout")
                        self.pub = conn
                        self.pub_ch = ch
                    self.pub_ch.basic_publish(EXCHANGE, "", body)
                    return True
                except Exception as e:
                    log.warning("bus: publish failed (%s)", e)
                    try:
                        if self.pub is not None:
                            self.pub.close()
                    except Exception:
                        pass
                    self.pub = None
            return False
