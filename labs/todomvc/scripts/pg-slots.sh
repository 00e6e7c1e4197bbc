#!/bin/sh
# On the primary (whichever node it is now), drop the replication slots of
# standbys that left the lab (a scale-down), so it does not keep WAL for them
# forever. Runs every up.
set -eu
cd /tmp
[ "$(runuser -u postgres -- psql -qtAc 'select pg_is_in_recovery()')" = f ] || exit 0
for slot in $(runuser -u postgres -- psql -qtAc "select slot_name from pg_replication_slots where not active"); do
  case " $LAB_ROLE_PG_NODES " in
    *" ${slot%slot} "*) ;;   # a standby of the lab, only halted: keep its slot
    *) runuser -u postgres -- psql -qtAc "select pg_drop_replication_slot('$slot')" >/dev/null
       echo "dropped the slot of $slot: ${slot%slot} left the lab" ;;
  esac
done
