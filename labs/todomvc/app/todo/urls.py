from django.urls import path

from . import views

urlpatterns = [
    path("", views.index),
    path("api/health", views.health),
    path("api/ready", views.ready),
    path("api/todos", views.todos),
    path("api/todos/toggle-all", views.toggle_all),
    path("api/todos/<int:todo_id>", views.todo),
]
