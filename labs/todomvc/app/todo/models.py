from django.db import models


class Todo(models.Model):
    """A todo. The table is made by the primary's provisioning (pg.sh)."""

    title = models.TextField()
    completed = models.BooleanField(default=False)
    order = models.IntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        app_label = "todo"
        db_table = "todos"
        managed = False
        ordering = ["order", "id"]

    def as_dict(self):
        return {"id": self.id, "title": self.title, "completed": self.completed, "order": self.order}
