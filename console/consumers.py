"""WebSocket consumers of console pages: an import's live progress (the job's channel-layer group)."""
from __future__ import annotations

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer


class ImportProgressConsumer(AsyncJsonWebsocketConsumer):
    """Sends the job's state on connect and on every progress message; another team's job is refused."""

    async def connect(self):
        from .services.imports import group_name

        user = self.scope.get("user")
        self.job_id = int(self.scope["url_route"]["kwargs"]["pk"])
        state = await self._state(user)
        if state is None:
            await self.close(code=4404)
            return
        self.group = group_name(self.job_id)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        await self.send_json(state)

    async def disconnect(self, code):
        if getattr(self, "group", None):
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def import_progress(self, event):
        await self.send_json(event["job"])

    @database_sync_to_async
    def _state(self, user):
        from . import selectors
        from .errors import NotFound
        from .services.imports import job_state

        if user is None or not user.is_authenticated:
            return None
        try:
            return job_state(selectors.import_job_get(user=user, pk=self.job_id))
        except NotFound:
            return None
