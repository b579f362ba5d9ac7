from django.urls import path

from areas import views

urlpatterns = [
    path("", views.areas_page, name="areas"),
    path("<str:name>/", views.area_page, name="area"),
    path("<str:name>/consensus/", views.run_consensus_now, name="area_consensus"),
]
