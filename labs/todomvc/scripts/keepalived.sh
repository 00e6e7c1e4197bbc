#!/bin/bash
# keepalived (VRRP) on every nginx node: the role's floating address
# ($LAB_ROLE_NGINX_FLOATING, and its IPv6 twin) lives on one live node whose
# nginx answers, and moves to another within about two seconds when that
# node or its nginx dies. Adverts every 0.5 s (VRRP version 3).
set -euo pipefail
VIP=$(echo $LAB_ROLE_NGINX_FLOATING | cut -d' ' -f1)
VIP6=$(echo ${LAB_ROLE_NGINX_FLOATING6:-} | cut -d' ' -f1)
PREFIX=${LAB_SUBNET#*/}
cat > /usr/local/bin/nginx-alive <<'SH'
#!/bin/bash
# keepalived's check: nginx answers here.
exec 3<>/dev/tcp/127.0.0.1/80 && printf 'GET /nginx-health HTTP/1.0\r\n\r\n' >&3 && grep -q ' 200 ' <&3
SH
chmod 755 /usr/local/bin/nginx-alive
v6=""
[ -n "$VIP6" ] && v6="virtual_ipaddress_excluded {
        $VIP6/64 dev eth0
    }"
cat > /etc/keepalived/keepalived.conf <<CONF
# lab: the floating address of role nginx.
global_defs {
    vrrp_version 3
    enable_script_security
    script_user root
}
vrrp_script nginx_alive {
    script "/usr/local/bin/nginx-alive"
    interval 1
    timeout 1
    fall 2
    rise 1
}
vrrp_instance www {
    state BACKUP
    interface eth0
    virtual_router_id 80
    # nginx1 is preferred, then nginx2, … ; any live one takes over.
    priority $((200 - LAB_INDEX))
    advert_int 0.5
    virtual_ipaddress {
        $VIP/$PREFIX dev eth0
    }
    $v6
    track_script {
        nginx_alive
    }
}
CONF
keepalived -t -f /etc/keepalived/keepalived.conf
systemctl enable -q keepalived
systemctl restart keepalived
echo "keepalived: $VIP ${VIP6:+and $VIP6} on the live nginx node with the highest priority (mine: $((200 - LAB_INDEX)))"
