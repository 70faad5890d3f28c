app_name = "ftauth_sandbox"
urlpatterns = []
