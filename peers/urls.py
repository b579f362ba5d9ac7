from django.urls import path

from peers import views

urlpatterns = [
    path("", views.household_page, name="household"),
    path("<str:name>/", views.peer_page, name="peer"),
    path("<str:name>/pause/", views.pause, name="peer_pause"),
    path("<str:name>/remove/", views.remove, name="remove_peer"),
]
