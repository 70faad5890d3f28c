from django.http import HttpResponse


def login(request, realm):
    return HttpResponse(status=501)


callback = login
