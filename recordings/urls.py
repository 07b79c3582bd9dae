from django.urls import path

from . import views

urlpatterns = [
    path("", views.qa_index, name="qa"),
    path("mine/", views.teller_reviews, name="qa-mine"),
    path("recordings/<uuid:recording_id>/", views.qa_replay, name="qa-replay"),
    path("recordings/<uuid:recording_id>/sides.json", views.qa_sides, name="qa-sides"),
    path("recordings/<uuid:recording_id>/<str:side>.mp4", views.qa_media, name="qa-media"),
    path(
        "recordings/<uuid:recording_id>/evidence/<uuid:evidence_id>.jpg",
        views.qa_evidence,
        name="qa-evidence",
    ),
    path("recordings/<uuid:recording_id>/notes", views.qa_notes, name="qa-notes"),
    path("recordings/<uuid:recording_id>/reviews", views.qa_reviews, name="qa-reviews"),
    path("recordings/<uuid:recording_id>/override", views.qa_override, name="qa-override"),
]
