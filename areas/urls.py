from django.urls import path

from areas import views

urlpatterns = [
    path("", views.areas_page, name="areas"),
    path("<str:name>/", views.area_page, name="area"),
    path("<str:name>/consensus/", views.run_consensus_now, name="area_consensus"),
    path("<str:name>/settings/", views.area_settings, name="area_settings"),
    path("<str:name>/mode/", views.area_mode, name="area_mode"),
    path("<str:name>/sharing/", views.area_sharing, name="area_sharing"),
    path("<str:name>/pause/", views.pause_area, name="area_pause"),
    path("<str:name>/resume/", views.resume_area, name="area_resume"),
    path("<str:name>/remove/", views.remove_area, name="area_remove"),
    path("<str:name>/files/", views.files_page, name="area_files"),
    path("<str:name>/conflicts/<int:pk>/", views.conflict_page, name="conflict"),
    path("<str:name>/windows/", views.add_window, name="area_windows"),
    path("<str:name>/windows/<int:pk>/remove/", views.remove_window, name="area_window_remove"),
]
