from django.contrib import admin

from peers.models import LocalPeer, Peer


@admin.register(Peer)
class PeerAdmin(admin.ModelAdmin):
    list_display = ["name", "peer_id", "address", "added_at"]
    readonly_fields = ["peer_id", "added_at"]
    exclude = ["public_key"]

    def has_add_permission(self, request) -> bool:
        # Peers are added on the household page, which checks the id and tells dashboards.
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(LocalPeer)
class LocalPeerAdmin(admin.ModelAdmin):
    list_display = ["name", "peer_id", "listen_address", "worker_seen_at"]
    readonly_fields = ["name", "peer_id", "listen_address", "created_at", "worker_seen_at"]
    exclude = ["public_key"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
